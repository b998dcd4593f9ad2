//! One engine test per link rule, field rule and conflict policy of sync-model.md §2–§4, each
//! against the simulated world: the real engine over both fakes, edits made as a person would.
//! (The close ⇄ complete pair, a note crossing once and `plan` are in tests/engine.rs.)

mod support;

use serde_json::json;
use support::rules::*;
use support::{audit, links, until_quiet, world};
use trengo_sync::inspect;
use trengo_sync::sim::world::{LINK_LABEL, LINK_TAG, SimWorld, WorldOptions};
use trengo_sync::store::{Store, ledger::EntryKind, links::Link, links::Origin};
use trengo_sync::sync::engine::Engine;
use trengo_sync::sync::policy::Field;
use trengo_sync::trengo::{Assignee, MessageKind, TicketStatus};

// ----- links (sync-model.md §2) -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_ticket_gets_a_task_titled_by_its_subject_on_the_contact_found_by_email() {
    let world = world(11, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = world.people()[1].clone();
    let ticket = labelled_ticket(&world, &person, "Invoice 2291 is wrong");
    let engine = settled(&world, &dir, &[], "").await;
    let link = link_of_ticket(&dir, ticket).expect("the labelled ticket was not linked");
    assert_eq!(link.ghl_contact_id, person.ghl_contact_id);
    let task = task(&engine, &link).await;
    assert_eq!(task.title.as_deref(), Some("Invoice 2291 is wrong"));
    let url = format!("{}/tickets/{ticket}", world.trengo_web_url());
    assert!(task.body.unwrap_or_default().contains(&url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_ticket_without_email_gets_a_task_on_the_contact_found_by_phone() {
    let world = world(12, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&world, &dir, &[], "").await;
    let person = world.people()[2].clone();
    let whatsapp = world.trengo().channel_ids()[1];
    // The same person writing in on WhatsApp: a Trengo contact with only a phone.
    let by_phone = engine
        .trengo
        .create_contact(whatsapp, &person.phone, Some(&person.name))
        .await
        .unwrap();
    assert!(by_phone.email.is_none());
    let ticket = new_ticket_in(&world, by_phone.id, whatsapp, "Delivery");
    world
        .trengo()
        .add_label(ticket, label(&world, LINK_LABEL))
        .unwrap();
    settle(&engine).await;
    let link = link_of_ticket(&dir, ticket).expect("the ticket was not linked by phone");
    assert_eq!(link.ghl_contact_id, person.ghl_contact_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_is_created_in_ghl_only_when_create_contacts_is_on() {
    let world = world(13, 8, 5).await;
    let email = "new.customer@example.org";
    let (refused, allowed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let engine = engine_with(&world, &refused, &[], "").await;
    let channel = world.trengo_channel_id().unwrap();
    let stranger = engine
        .trengo
        .create_contact(channel, email, Some("New Customer"))
        .await
        .unwrap();
    let ticket = new_ticket_in(&world, stranger.id, channel, "First order");
    world
        .trengo()
        .add_label(ticket, label(&world, LINK_LABEL))
        .unwrap();

    settle(&engine).await;
    assert!(link_of_ticket(&refused, ticket).is_none());
    let found = engine.ghl.find_duplicate(Some(email), None).await.unwrap();
    assert!(
        found.is_none(),
        "a GHL contact was made although not allowed"
    );

    let allowed_engine = settled(
        &world,
        &allowed,
        &[("create_contacts = false", "create_contacts = true")],
        "",
    )
    .await;
    let link = link_of_ticket(&allowed, ticket).expect("no link with create_contacts on");
    let contact = allowed_engine
        .ghl
        .contact(&link.ghl_contact_id)
        .await
        .unwrap();
    assert_eq!(contact.email.as_deref(), Some(email));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_in_a_configured_channel_is_linked_without_the_label() {
    let world = world(14, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = world.people()[1].clone();
    let (email, whatsapp) = (
        world.trengo_channel_id().unwrap(),
        world.trengo().channel_ids()[1],
    );
    let in_channel = new_ticket_in(&world, person.trengo_contact_id, whatsapp, "By WhatsApp");
    let elsewhere = new_ticket_in(&world, person.trengo_contact_id, email, "By e-mail");
    let rule = format!("create_contacts = false\ntrengo_channels = [{whatsapp}]");
    settled(&world, &dir, &[("create_contacts = false", &rule)], "").await;
    assert!(link_of_ticket(&dir, in_channel).is_some());
    assert!(link_of_ticket(&dir, elsewhere).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_of_a_configured_team_is_linked_without_the_label() {
    let world = world(15, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let probe = engine_with(&world, &dir, &[], "").await;
    let team = {
        let mut teams = std::pin::pin!(probe.trengo.teams());
        futures::StreamExt::next(&mut teams)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    drop(probe);
    let person = world.people()[1].clone();
    let channel = world.trengo_channel_id().unwrap();
    let of_team = new_ticket_in(&world, person.trengo_contact_id, channel, "For the team");
    let other = new_ticket_in(&world, person.trengo_contact_id, channel, "For nobody");
    let dir = tempfile::tempdir().unwrap();
    let rule = format!("create_contacts = false\ntrengo_teams = [{team}]");
    let engine = engine_with(&world, &dir, &[("create_contacts = false", &rule)], "").await;
    engine
        .trengo
        .assign(of_team, Assignee::Team(team))
        .await
        .unwrap();
    settle(&engine).await;
    assert!(link_of_ticket(&dir, of_team).is_some());
    assert!(link_of_ticket(&dir, other).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_contact_task_gets_a_ticket_with_the_body_as_internal_note_and_url_written_back() {
    let world = world(16, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(&world, &dir, &[], "").await;
    // Person 0 is the showcase: tagged for the link rule, with an open task.
    let person = world.people()[0].clone();
    let before = engine.ghl.tasks(&person.ghl_contact_id).await.unwrap();
    settle(&engine).await;
    let link = links(&dir)
        .into_iter()
        .find(|l| l.origin == Origin::Ghl && l.ghl_contact_id == person.ghl_contact_id)
        .expect("the tagged contact's open task got no ticket");
    let body = before
        .iter()
        .find(|t| t.id == link.task_id)
        .and_then(|t| t.body.clone())
        .unwrap();
    let made = ticket(&engine, link.ticket_id).await;
    assert_eq!(made.channel_id(), world.trengo_channel_id());
    let notes = messages(&engine, link.ticket_id).await;
    assert!(
        notes
            .iter()
            .any(|(kind, text)| *kind == MessageKind::Note && text.contains(&body)),
        "the task body is not an internal note: {notes:?}"
    );
    let url = format!("{}/tickets/{}", world.trengo_web_url(), link.ticket_id);
    assert!(task(&engine, &link).await.body.unwrap().contains(&url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_titled_with_the_prefix_gets_a_ticket_without_the_contact_tag() {
    let world = world(17, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = untagged_person(&world);
    let prefixed = world
        .ghl()
        .create_task(
            &person.ghl_contact_id,
            &json!({"title": "[Trengo] Refund order 1182", "body": "Refund it."}),
        )
        .unwrap();
    let plain = world
        .ghl()
        .create_task(
            &person.ghl_contact_id,
            &json!({"title": "Refund order 1183"}),
        )
        .unwrap();
    let rule = format!("ghl_tag = \"{LINK_TAG}\"\nghl_title_prefix = \"[trengo]\"");
    settled(
        &world,
        &dir,
        &[(&format!("ghl_tag = \"{LINK_TAG}\""), &rule)],
        "",
    )
    .await;
    assert!(link_of_task(&dir, prefixed["id"].as_str().unwrap()).is_some());
    assert!(link_of_task(&dir, plain["id"].as_str().unwrap()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ticket_channel_tagged_contacts_tasks_get_no_ticket() {
    let world = world(18, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let channel = format!(
        "trengo_channel_id = {}\n",
        world.trengo_channel_id().unwrap()
    );
    settled(&world, &dir, &[(&channel, "")], "").await;
    let made: Vec<Link> = links(&dir)
        .into_iter()
        .filter(|l| l.origin == Origin::Ghl)
        .collect();
    assert!(made.is_empty(), "tickets were made for tasks: {made:?}");
    assert!(!links(&dir).is_empty(), "the Trengo → GHL rule still links");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_already_carrying_a_ticket_url_is_adopted_not_duplicated() {
    let world = world(19, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = untagged_person(&world);
    let ticket = labelled_ticket(&world, &person, "Made by hand");
    let url = format!("{}/tickets/{ticket}", world.trengo_web_url());
    let by_hand = world
        .ghl()
        .create_task(
            &person.ghl_contact_id,
            &json!({"title": "Made by hand", "body": format!("See {url}")}),
        )
        .unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = link_of_ticket(&dir, ticket).unwrap();
    assert_eq!(link.task_id, by_hand["id"].as_str().unwrap());
    let naming = engine
        .ghl
        .tasks(&person.ghl_contact_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.body.as_deref().unwrap_or("").contains(&url))
        .count();
    assert_eq!(naming, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_store_is_rebuilt_by_adoption_without_a_duplicate() {
    let world = world(20, 10, 5).await;
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    settled(&world, &first, &[], "").await;
    let engine = settled(&world, &second, &[], "").await;
    let pairs = |dir| {
        let mut p: Vec<(i64, String)> = links(dir)
            .into_iter()
            .map(|l| (l.ticket_id, l.task_id))
            .collect();
        p.sort();
        p
    };
    assert_eq!(pairs(&first), pairs(&second));
    let (_, duplicates) = audit(&world, &second, &engine).await;
    assert!(duplicates.is_empty(), "{duplicates:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_leaving_scope_stops_syncing_and_deletes_nothing() {
    let world = world(21, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = untagged_person(&world);
    let ticket = labelled_ticket(&world, &person, "Leaving soon");
    let engine = settled(&world, &dir, &[], "").await;
    let link = link_of_ticket(&dir, ticket).unwrap();
    world
        .trengo()
        .remove_label(ticket, label(&world, LINK_LABEL))
        .unwrap();
    until_quiet(&engine, 4).await;
    assert!(!links(&dir).iter().any(|l| l.id == link.id));
    assert!(
        ledger(&dir)
            .iter()
            .any(|e| e.kind == EntryKind::Unlinked && e.link_id == Some(link.id))
    );
    world.trengo().close_ticket(ticket).unwrap();
    until_quiet(&engine, 4).await;
    let task = task(&engine, &link).await;
    assert!(
        !task.completed,
        "a ticket out of scope still completed its task"
    );
}

// ----- status (sync-model.md §3) -----

/// An active link whose ticket is open and whose task is not completed.
async fn open_link(engine: &Engine, dir: &tempfile::TempDir) -> Link {
    for link in links(dir) {
        let open = !ticket(engine, link.ticket_id).await.status.is_done();
        if open && !task(engine, &link).await.completed {
            return link;
        }
    }
    panic!("no open link")
}

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

// ----- tags (sync-model.md §3) -----

/// A person outside the tag rule with two fresh labelled tickets, linked: (person, a, b).
async fn two_tickets(world: &SimWorld, dir: &tempfile::TempDir) -> (Engine, i64, i64) {
    let person = untagged_person(world);
    let a = labelled_ticket(world, &person, "First question");
    let b = labelled_ticket(world, &person, "Second question");
    (settled(world, dir, &[], "").await, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_label_on_a_ticket_becomes_a_contact_tag_and_unmanaged_ones_never_cross() {
    let world = world(25, 10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    let link = open_link(&engine, &dir).await;
    let person = world
        .people()
        .iter()
        .find(|p| p.ghl_contact_id == link.ghl_contact_id)
        .unwrap()
        .clone();
    let t = world.trengo();
    t.add_label(link.ticket_id, label(&world, "trengo:callback"))
        .unwrap();
    t.add_label(link.ticket_id, label(&world, "Urgent"))
        .unwrap();
    world
        .ghl()
        .add_contact_tag(&person.ghl_contact_id, "newsletter-2026")
        .unwrap();
    until_quiet(&engine, 4).await;
    let tags = contact_tags(&world, &person);
    assert!(tags.iter().any(|t| t == "trengo:callback"), "{tags:?}");
    assert!(
        !tags.iter().any(|t| t.eq_ignore_ascii_case("urgent")),
        "{tags:?}"
    );
    let on_ticket = labels(&engine, link.ticket_id).await;
    assert!(!on_ticket.iter().any(|l| l == "newsletter-2026"));
    assert!(
        on_ticket.iter().any(|l| l == "Urgent"),
        "an unmanaged label was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_tag_added_goes_to_the_open_linked_tickets_only() {
    let world = world(26, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, closed, open) = two_tickets(&world, &dir).await;
    world.trengo().close_ticket(closed).unwrap();
    until_quiet(&engine, 4).await;
    let contact = link_of_ticket(&dir, open).unwrap().ghl_contact_id;
    // A tag no ticket has carried yet (its label is created: create_labels is on).
    world
        .ghl()
        .add_contact_tag(&contact, "trengo:added-later")
        .unwrap();
    until_quiet(&engine, 4).await;
    assert!(
        labels(&engine, open)
            .await
            .contains(&"trengo:added-later".into())
    );
    assert!(
        !labels(&engine, closed)
            .await
            .contains(&"trengo:added-later".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_tag_removed_leaves_every_linked_ticket_carrying_it() {
    let world = world(27, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, a, b) = two_tickets(&world, &dir).await;
    let vip = label(&world, "trengo:vip");
    world.trengo().add_label(a, vip).unwrap();
    world.trengo().add_label(b, vip).unwrap();
    world.trengo().close_ticket(a).unwrap();
    until_quiet(&engine, 4).await;
    let contact = link_of_ticket(&dir, a).unwrap().ghl_contact_id;
    world
        .ghl()
        .remove_contact_tag(&contact, "trengo:vip")
        .unwrap();
    until_quiet(&engine, 4).await;
    assert!(!labels(&engine, a).await.contains(&"trengo:vip".into()));
    assert!(!labels(&engine, b).await.contains(&"trengo:vip".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_keeps_a_tag_while_any_linked_ticket_even_a_closed_one_carries_the_label() {
    let world = world(28, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, a, b) = two_tickets(&world, &dir).await;
    let person = untagged_person(&world);
    // A label only these two tickets will ever carry.
    let gold = engine
        .trengo
        .create_label("trengo:gold", "#D4AF37")
        .await
        .unwrap()
        .id;
    world.trengo().add_label(a, gold).unwrap();
    world.trengo().add_label(b, gold).unwrap();
    until_quiet(&engine, 4).await;
    world.trengo().close_ticket(a).unwrap();
    world.trengo().remove_label(b, gold).unwrap();
    until_quiet(&engine, 4).await;
    assert!(
        contact_tags(&world, &person).contains(&"trengo:gold".into()),
        "the closed ticket still carries trengo:gold; the contact lost it"
    );
    world.trengo().remove_label(a, gold).unwrap();
    until_quiet(&engine, 4).await;
    assert!(!contact_tags(&world, &person).contains(&"trengo:gold".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_label_is_created_only_when_create_labels_is_on() {
    let world = world(29, 8, 5).await;
    let (on, off) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let person = untagged_person(&world);
    let ticket = labelled_ticket(&world, &person, "Brand question");
    let no_labels = [("create_labels = true", "create_labels = false")];
    let engine = settled(&world, &off, &no_labels, "").await;
    world
        .ghl()
        .add_contact_tag(&person.ghl_contact_id, "trengo:brand-new")
        .unwrap();
    until_quiet(&engine, 4).await;
    assert!(world.trengo().label_id("trengo:brand-new").is_none());
    drop(engine);

    let engine = settled(&world, &on, &[], "").await;
    assert!(world.trengo().label_id("trengo:brand-new").is_some());
    assert!(
        labels(&engine, ticket)
            .await
            .contains(&"trengo:brand-new".into())
    );
}

// ----- notes (sync-model.md §3 "comments") -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_internal_notes_are_copied_once_when_a_link_is_made() {
    let world = world(30, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let person = untagged_person(&world);
    let channel = world.trengo_channel_id().unwrap();
    let ticket = new_ticket_in(&world, person.trengo_contact_id, channel, "Stock");
    world
        .trengo()
        .post_note(ticket, "Checked stock: three left.")
        .unwrap();
    world
        .trengo()
        .add_label(ticket, label(&world, LINK_LABEL))
        .unwrap();
    let engine = settled(&world, &dir, &[], "").await;
    until_quiet(&engine, 2).await;
    let bodies = note_bodies(&engine, &person).await;
    assert_eq!(
        copies(&bodies, "Checked stock: three left."),
        1,
        "{bodies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_note_naming_a_ticket_reaches_that_ticket_only_as_an_internal_note() {
    let world = world(31, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, older, newer) = two_tickets(&world, &dir).await;
    let contact = link_of_ticket(&dir, older).unwrap().ghl_contact_id;
    let text = format!("Re #{older}: the customer called back.");
    world.ghl().add_note(&contact, &text).unwrap();
    until_quiet(&engine, 4).await;
    let on_older = messages(&engine, older).await;
    let copy: Vec<_> = on_older.iter().filter(|(_, t)| t.contains(&text)).collect();
    assert_eq!(copy.len(), 1, "{on_older:?}");
    assert_eq!(
        copy[0].0,
        MessageKind::Note,
        "GHL text reached the customer"
    );
    let on_newer = messages(&engine, newer).await;
    assert!(!on_newer.iter().any(|(_, t)| t.contains(&text)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_note_without_a_ticket_number_goes_to_the_most_recently_updated_open_ticket() {
    let world = world(32, 8, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, open, latest) = two_tickets(&world, &dir).await;
    // The most recently updated ticket is closed: the note goes to the open one.
    world.trengo().close_ticket(latest).unwrap();
    until_quiet(&engine, 4).await;
    let contact = link_of_ticket(&dir, open).unwrap().ghl_contact_id;
    world
        .ghl()
        .add_note(&contact, "Sent the brochure by post.")
        .unwrap();
    until_quiet(&engine, 4).await;
    let has = |m: Vec<(MessageKind, String)>| {
        m.iter()
            .any(|(k, t)| *k == MessageKind::Note && t.contains("Sent the brochure by post."))
    };
    assert!(has(messages(&engine, open).await));
    assert!(!has(messages(&engine, latest).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_messages_reach_ghl_only_when_enabled() {
    for enabled in [false, true] {
        let world = world(33, 8, 5).await;
        let dir = tempfile::tempdir().unwrap();
        let person = untagged_person(&world);
        let ticket = labelled_ticket(&world, &person, "Parcel");
        let extra = if enabled {
            "\n[comments]\ninclude_customer_messages = true\n"
        } else {
            ""
        };
        let engine = settled(&world, &dir, &[], extra).await;
        world
            .trengo()
            .post_customer_message(ticket, "Where is parcel 4471?")
            .unwrap();
        until_quiet(&engine, 4).await;
        let bodies = note_bodies(&engine, &person).await;
        let expected = usize::from(enabled);
        assert_eq!(
            copies(&bodies, "Where is parcel 4471?"),
            expected,
            "{bodies:?}"
        );
    }
}

// ----- assignee (sync-model.md §3, optional) -----

/// A world whose users match by e-mail on both sides and whose config syncs the assignee.
async fn assignee_world(seed: u64) -> (SimWorld, std::sync::Arc<trengo_sync::clock::ManualClock>) {
    let mut options = WorldOptions::unpaced(seed, 10, 5);
    options.assignee = true;
    world_on_manual_clock(options).await
}

/// The agents' e-mails, the same on both sides.
fn agents(world: &SimWorld) -> Vec<String> {
    world.trengo().agent_emails()
}

/// The assignee e-mails of a link's ticket and task.
async fn assignees(
    world: &SimWorld,
    engine: &Engine,
    link: &Link,
) -> (Option<String>, Option<String>) {
    let on_ticket = ticket(engine, link.ticket_id).await.user_id;
    let on_task = task(engine, link).await.assigned_to;
    let agents = agents(world);
    (
        agents
            .iter()
            .find(|e| on_ticket.is_some() && world.trengo().user_id(e) == on_ticket)
            .cloned(),
        agents
            .iter()
            .find(|e| on_task.is_some() && world.ghl().user_id(e) == on_task)
            .cloned(),
    )
}

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
    clock.advance(chrono::Duration::seconds(2));
    let (to, back) = (&agents[1], &agents[2]);
    world
        .trengo()
        .assign_ticket(link.ticket_id, world.trengo().user_id(to).unwrap())
        .unwrap();
    until_quiet(&engine, 4).await;
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
    clock.advance(chrono::Duration::seconds(2));
    world
        .trengo()
        .assign_ticket(link.ticket_id, world.trengo().user_id(&agent).unwrap())
        .unwrap();
    until_quiet(&engine, 4).await;
    assert_eq!(task(&engine, &link).await.assigned_to, Some(desk.clone()));
    // Read back, the alias is the same person: the next passes write nothing.
    assert_eq!(until_quiet(&engine, 1).await, 1);
    // And the way back: the task given to the aliased user puts the agent on the ticket.
    let other = agents(&world)[2].clone();
    clock.advance(chrono::Duration::seconds(2));
    world
        .trengo()
        .assign_ticket(link.ticket_id, world.trengo().user_id(&other).unwrap())
        .unwrap();
    until_quiet(&engine, 4).await;
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

// ----- conflict policies (sync-model.md §4.1) -----

/// Reassigns a settled link's ticket and task to two different agents at once (as the demo
/// does), then, when `later` is "ghl", has a person touch the GHL contact two seconds later on
/// the fakes' clock: reassigning a task moves no contact time (ghl-api.md §3.2), so without
/// that Trengo is the later side. Returns (Trengo's agent, GHL's agent).
fn assignee_conflict(
    world: &SimWorld,
    clock: &trengo_sync::clock::ManualClock,
    link: &Link,
    later: &str,
) -> (String, String) {
    clock.advance(chrono::Duration::seconds(2));
    let agents = world.reassign_both(link.ticket_id, &link.task_id).unwrap();
    if later == "ghl" {
        clock.advance(chrono::Duration::seconds(2));
        world
            .ghl()
            .add_contact_tag(&link.ghl_contact_id, "called-back")
            .unwrap();
    }
    agents
}

/// The latest settled-conflict ledger entry of a link: (winning side, losing value).
fn settled_conflict(dir: &tempfile::TempDir, link: &Link) -> (String, serde_json::Value) {
    let entries: Vec<_> = ledger(dir)
        .into_iter()
        .filter(|e| e.kind == EntryKind::ConflictSettled && e.link_id == Some(link.id))
        .collect();
    // Newest first: the conflict the test made, not one settled when the link was made.
    assert!(!entries.is_empty(), "no settled conflict in the ledger");
    assert_eq!(entries[0].field.as_deref(), Some("assignee"));
    (
        entries[0].side.clone().unwrap(),
        entries[0].losing_value.clone().unwrap(),
    )
}

async fn policy_case(
    policy: &str,
    later: &str,
) -> (
    String,
    String,
    (Option<String>, Option<String>),
    (String, serde_json::Value),
) {
    let (world, clock) = assignee_world(37).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("\n[conflicts]\nassignee = \"{policy}\"\n");
    let engine = settled(&world, &dir, &[], &extra).await;
    let link = open_link(&engine, &dir).await;
    let (to_t, to_g) = assignee_conflict(&world, &clock, &link, later);
    until_quiet(&engine, 4).await;
    let now = assignees(&world, &engine, &link).await;
    (to_t, to_g, now, settled_conflict(&dir, &link))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_policy_gives_an_assignee_conflict_to_the_later_side_and_ledgers_the_loser() {
    let (to_t, to_g, now, (winner, losing)) = policy_case("newest", "trengo").await;
    assert_eq!(now, (Some(to_t.clone()), Some(to_t)));
    assert_eq!((winner.as_str(), losing), ("trengo", json!(to_g)));

    let (to_t, to_g, now, (winner, losing)) = policy_case("newest", "ghl").await;
    assert_eq!(now, (Some(to_g.clone()), Some(to_g)));
    assert_eq!((winner.as_str(), losing), ("ghl", json!(to_t)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trengo_policy_gives_an_assignee_conflict_to_trengo_even_when_ghl_changed_later() {
    let (to_t, to_g, now, (winner, losing)) = policy_case("trengo", "ghl").await;
    assert_eq!(now, (Some(to_t.clone()), Some(to_t)));
    assert_eq!((winner.as_str(), losing), ("trengo", json!(to_g)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghl_policy_gives_an_assignee_conflict_to_ghl_even_when_trengo_changed_later() {
    let (to_t, to_g, now, (winner, losing)) = policy_case("ghl", "trengo").await;
    assert_eq!(now, (Some(to_g.clone()), Some(to_g)));
    assert_eq!((winner.as_str(), losing), ("ghl", json!(to_t)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_policy_holds_an_assignee_conflict_until_resolve_settles_it() {
    let (world, clock) = assignee_world(38).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[conflicts]\nassignee = \"manual\"\n";
    let engine = settled(&world, &dir, &[], extra).await;
    let link = open_link(&engine, &dir).await;
    let (to_t, to_g) = assignee_conflict(&world, &clock, &link, "trengo");
    until_quiet(&engine, 4).await;
    until_quiet(&engine, 2).await;
    // Held: neither side is written, and `conflicts` lists both values.
    assert_eq!(
        assignees(&world, &engine, &link).await,
        (Some(to_t.clone()), Some(to_g.clone()))
    );
    let report = {
        let s = Store::open_read_only(dir.path().join("state.sqlite")).unwrap();
        inspect::conflicts_report(&s).unwrap()
    };
    assert!(report.contains(&to_t) && report.contains(&to_g), "{report}");
    assert!(
        ledger(&dir)
            .iter()
            .any(|e| e.kind == EntryKind::ConflictHeld)
    );

    // `resolve LINK assignee --take ghl`.
    {
        let mut s = Store::open(dir.path().join("state.sqlite")).unwrap();
        inspect::resolve(
            &mut s,
            link.id.0,
            Field::Assignee,
            false,
            chrono::Utc::now(),
        )
        .unwrap();
    }
    until_quiet(&engine, 4).await;
    assert_eq!(
        assignees(&world, &engine, &link).await,
        (Some(to_g.clone()), Some(to_g))
    );
    assert!(
        ledger(&dir)
            .iter()
            .any(|e| e.kind == EntryKind::ConflictResolved)
    );
}
